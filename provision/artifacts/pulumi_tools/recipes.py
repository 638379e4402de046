"""The three Go recipes of the Pulumi engine (same Recipe type and folders as the Kubernetes components).

    recipes/pulumi/<cli>/go.mod                       requires pkg/v3 and sdk/v3 at the CLI's version
    recipes/pulumi-language-python/<host>/go.mod      requires sdk/v3 at the language host's version
                                         /pulumi-language-python-exec   the executor        } from sdk/v3 at the
                                         /pulumi-resource-pulumi-python  dynamic providers  } Python SDK's version
    recipes/pulumi-kubernetes/<release>/go.mod        requires provider/v4 (pseudo-version) and sdk/v4 at the release
                                       /cmd/pulumi-resource-kubernetes/main.go   upstream's main, as published

The provider's schema is generated into the build's copy of the recipe exactly as upstream's Makefile does
(`VERSION=<release> go generate` runs cmd/pulumi-resource-kubernetes/generate.go, which writes schema-embed.json and
terraform-mapping-embed.json from the schema.json and terraform-mapping.json of the module), see build.py.
"""

from __future__ import annotations

from provision.artifacts.pulumi_tools.catalog import PROVIDER_MODULE, SDK_MODULE, PulumiRelease
from provision.artifacts.recipes import Recipe, Target

EXECUTOR = "pulumi-language-python-exec"
DYNAMIC_PROVIDER = "pulumi-resource-pulumi-python"  # runs `python -m pulumi.dynamic`: the SDK's dynamic providers
# The Python side of the language host: scripts of sdk/v3 at the Python SDK's version, pinned into the recipe.
SDK_SCRIPTS = {EXECUTOR: "python/cmd/" + EXECUTOR, DYNAMIC_PROVIDER: "python/dist/" + DYNAMIC_PROVIDER}
PROVIDER_CMD = "cmd/pulumi-resource-kubernetes"
# Files of the provider's module that its main package embeds once generated (upstream's `go generate` inputs).
PROVIDER_GENERATE_INPUTS = ("generate.go", "schema.json", "terraform-mapping.json")
PROVIDER_GENERATED = ("schema-embed.json", "terraform-mapping-embed.json")


def _version_flag(package: str, value: str) -> tuple[str, ...]:
    return (f"-X {package}.Version={value}",)


def cli(release: PulumiRelease) -> Recipe:
    """`pulumi`, stamped as upstream's release builds are (`pulumi version` prints it)."""
    return Recipe(
        "pulumi",
        release.cli,
        targets=(Target("github.com/pulumi/pulumi/pkg/v3/cmd/pulumi", "pulumi"),),
        ldflags=_version_flag(f"{SDK_MODULE}/go/common/version", release.cli),
    )


def language_host(release: PulumiRelease) -> Recipe:
    """`pulumi-language-python`: the LanguageRuntime gRPC server the CLI starts; it runs the program with the
    executor script, which must sit beside it."""
    return Recipe(
        "pulumi-language-python",
        release.language_host,
        targets=(Target(f"{SDK_MODULE}/python/cmd/pulumi-language-python", "pulumi-language-python"),),
        ldflags=_version_flag(f"{SDK_MODULE}/go/common/version", release.language_host),
    )


def kubernetes_provider(release: PulumiRelease) -> Recipe:
    """`pulumi-resource-kubernetes`, with its schema embedded and its version stamped as upstream's Makefile does
    (the generic version, without the `v`)."""
    return Recipe(
        "pulumi-kubernetes",
        release.kubernetes_provider,
        targets=(Target(f"./{PROVIDER_CMD}", "pulumi-resource-kubernetes"),),
        ldflags=_version_flag(f"{PROVIDER_MODULE}/pkg/version", generic_version(release.kubernetes_provider)),
    )


def generic_version(version: str) -> str:
    """Upstream's VERSION_GENERIC: the semver without its `v`."""
    return version.removeprefix("v")


def recipes_for(release: PulumiRelease) -> list[Recipe]:
    """The recipes the toolset is built from (the provider's only when the release asks for it)."""
    engine = [cli(release), language_host(release)]
    return [*engine, kubernetes_provider(release)] if release.with_kubernetes_provider else engine
