"""Which Pulumi engine keelson builds, and why those versions (each choice measured against the module proxy).

The versions should match the `pulumi` and `pulumi-kubernetes` Python packages in uv.lock; where the module proxy
does not serve that version, the closest served one is taken and the reason written here (and in README):

- CLI: `github.com/pulumi/pulumi/pkg/v3` (cmd/pulumi). uv.lock has pulumi 3.272.0 (the newest on PyPI here), but
  pkg/v3 is served only from v3.274.0 (v3.272.0 and v3.273.0 answer 403): v3.274.0 is the served version closest to
  the SDK. Its go.mod replaces sdk/v3 with ../sdk, so the recipe requires sdk/v3 at the same version.
- Python language host: its own module (`sdk/python/cmd/pulumi-language-python/v3`) is not served at any version.
  Before the language hosts got their own modules it was a package of `github.com/pulumi/pulumi/sdk/v3`; the newest
  served sdk/v3 that still has it is v3.79.0 (v3.80.0 on no longer has it). Its executor script,
  `pulumi-language-python-exec`, is the Python side of the host and belongs to the SDK it runs: the recipe takes it
  from sdk/v3 at the Python SDK's own version (3.272.0).
- Kubernetes provider: `github.com/pulumi/pulumi-kubernetes/provider/v4` is served only as the pseudo-version
  v4.0.0-20260115033456-f47bc2d6f199, whose commit is the tag v4.25.0 (the repository tags the root, not
  provider/v4.25.0, so the proxy knows no semver for the submodule). uv.lock's pulumi-kubernetes is 4.34.2: no module
  of that release is served, so the provider is 4.25.0, the newest served.
"""

from __future__ import annotations

from dataclasses import dataclass, replace


@dataclass(frozen=True)
class PulumiRelease:
    cli: str  # pkg/v3 and sdk/v3 version of the `pulumi` CLI
    python_sdk: str  # the `pulumi` Python package in uv.lock (the executor script comes from sdk/v3 at this version)
    language_host: str  # sdk/v3 version whose python/cmd/pulumi-language-python is built
    kubernetes_provider: str  # the release the provider's module commit is tagged with
    kubernetes_provider_module: str  # the version the module proxy serves provider/v4 under
    python_kubernetes: str  # the `pulumi-kubernetes` Python package in uv.lock
    # The Kubernetes provider plugin: the stack installs the addons through it (addons/). It is the longest Go build
    # of all (35 min here); `--without-kubernetes-provider` builds the engine alone, for stacks without addons.
    with_kubernetes_provider: bool = True

    @property
    def executor_version(self) -> str:
        return f"v{self.python_sdk}"

    @property
    def name(self) -> str:
        """The toolset folder's prefix: the CLI version, and `+kubernetes` when the provider is in it."""
        return self.cli + ("+kubernetes" if self.with_kubernetes_provider else "")


PULUMI = PulumiRelease(
    cli="v3.274.0",
    python_sdk="3.272.0",
    language_host="v3.79.0",
    kubernetes_provider="v4.25.0",
    kubernetes_provider_module="v4.0.0-20260115033456-f47bc2d6f199",
    python_kubernetes="4.34.2",
)
PULUMI_ENGINE_ONLY = replace(PULUMI, with_kubernetes_provider=False)

CLI_MODULE = "github.com/pulumi/pulumi/pkg/v3"
SDK_MODULE = "github.com/pulumi/pulumi/sdk/v3"
PROVIDER_MODULE = "github.com/pulumi/pulumi-kubernetes/provider/v4"
PROVIDER_SDK_MODULE = "github.com/pulumi/pulumi-kubernetes/sdk/v4"
