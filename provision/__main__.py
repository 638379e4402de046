"""The Pulumi program (Pulumi.yaml's `main: provision/`): provision/stack/program.py builds the stack — machines,
the cluster (keelson's role phases), then the addons (addons/: pulumi-kubernetes through the `kubeconfig` output)."""

from provision.stack.program import main

main()
