"""The Pulumi engine built from its Go modules, like the Kubernetes artifacts (same recipes, parts and Go caches):
the `pulumi` CLI, the Python language host and the Kubernetes provider plugin, assembled into one cached toolset
that `keelson pulumi` puts first on PATH (plugins found on PATH are used without a download).

    catalog.py   which versions, and why those (the module proxy does not serve every release)
    recipes.py   the three Go recipes
    pin.py       writes them into the source tree (`keelson artifacts pin --pulumi`)
    build.py     builds the parts and the toolset (`keelson artifacts build --pulumi`), verifies it
    environ.py   the environment a `pulumi` run gets (PATH, no update check, no plugin downloads)
"""
