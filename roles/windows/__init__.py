"""Role `windows`: Windows workers (Windows Server 2019 or later, reached over OpenSSH, scripts in PowerShell) join
the cluster after the Linux workers: the Containers feature, containerd (its Windows release, as a Windows service),
kubelet and kube-proxy as Windows services (`--windows-service`, no service wrapper), flanneld (a scheduled task: it
has no service entry point) with the win-overlay CNI plugin on flannel's vxlan overlay (VNI 4096, UDP 4789),
`kubeadm.exe join` with the Linux workers' JoinConfiguration (containerd's named pipe as the CRI), then serving
certificates approved and nodes Ready. Binaries come from `upstream` (or a mirror carrying them), each checked
with Get-FileHash against the digest resolved on the operator side.

Windows cannot run here: every script is parsed with tree-sitter-powershell in the unit tests and sent, byte for
byte, to a labelled stand-in `powershell` on a lab Linux host; none of it has run on Windows.
"""

from __future__ import annotations

from roles.windows.phases import phases

__all__ = ["phases"]
