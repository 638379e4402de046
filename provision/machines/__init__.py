"""Machine sources: each a ComponentResource producing the hosts the inventory needs (base.py: the contract).

existing.py   machines that are there already, adopted by address (nothing created or destroyed)
lab.py        the lab's systemd-nspawn hosts as a real resource: create boots, delete powers off and removes
libvirt.py    KVM domains on a libvirt host          } written against the real providers' resource types,
hcloud.py     Hetzner Cloud servers                  } tested with Pulumi mocks only (no cloud reachable here)
"""
