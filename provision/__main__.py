"""The Pulumi program (Pulumi.yaml's `main: provision/`): provision/stack/program.py builds the stack — machines,
the cluster (keelson's role phases), then the addons (addons/: pulumi-kubernetes through the `kubeconfig` output)."""

from keelson.codecache import install

install()  # the code of the dataclasses imported next, compiled once and kept (keelson/codecache.py), as the CLI does

from provision.stack.program import main  # noqa: E402 (after the cache: the program's imports define the dataclasses)

main()
