"""The Pulumi program (Pulumi.yaml's `main: provision/`): provision/stack/program.py builds the stack.

The addons (pulumi-kubernetes ComponentResources in addons/, with a Provider made from the `kubeconfig` output)
will be added here once the control plane is proven: `addons.install(cluster)` after the cluster.
"""

from provision.stack.program import main

main()
