"""`keelson artifacts pin`: the upstream go.mod's fork replaces are repeated in a recipe, local ones are not."""

from __future__ import annotations

from provision.artifacts.pin import module_replaces

TRAEFIK_LIKE = """module github.com/traefik/traefik/v3

go 1.24.0

require github.com/gorilla/mux v1.8.1

// Containous forks
replace (
	github.com/abbot/go-http-auth => github.com/containous/go-http-auth v0.4.1-0.20200324110947-a37a7636d23e
	github.com/gorilla/mux => github.com/containous/mux v0.0.0-20250523120546-41b6ec3aed59 // a comment
	example.com/local => ./local
)

replace github.com/mailgun/minheap v0.0.1 => github.com/containous/minheap v0.0.0-20190809180810-6e71eb837595
"""

KUBERNETES_LIKE = """module k8s.io/kubernetes

replace (
	k8s.io/api => ./staging/src/k8s.io/api
	k8s.io/apimachinery => ./staging/src/k8s.io/apimachinery
)
"""


def test_fork_replaces_are_kept_with_their_versions_and_local_ones_dropped() -> None:
    assert module_replaces(TRAEFIK_LIKE) == [
        "github.com/abbot/go-http-auth => github.com/containous/go-http-auth v0.4.1-0.20200324110947-a37a7636d23e",
        "github.com/gorilla/mux => github.com/containous/mux v0.0.0-20250523120546-41b6ec3aed59",
        "github.com/mailgun/minheap v0.0.1 => github.com/containous/minheap v0.0.0-20190809180810-6e71eb837595",
    ]


def test_kubernetes_staging_replaces_are_not_copied() -> None:
    assert module_replaces(KUBERNETES_LIKE) == []
