"""Plans: each an explicit ordered list of phases (k0sctl's actions), built in one module here and run by the one
runner (`roles/engine/runner.py`) with the same progress and `--json` events, dry run included.

    apply.py     `keelson plan` / `keelson apply`: validate → prepare hosts → runtime → PKI → etcd → LB → backups
    restore.py   `keelson restore`: one verified etcd snapshot back onto every member

Upgrade, join and remove will be modules beside these. A plan module has `plan(...) -> Plan`; the phases themselves
live with the role or package they belong to.
"""
