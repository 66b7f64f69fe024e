"""ECR reports each repository's effective scanning, which moto 5.2.5 does not work out.

``BatchGetRepositoryScanningConfiguration`` answers, per repository, how its images are
scanned: with no registry-level rules (a BASIC registry without filters) the repository's
own, deprecated scan-on-push flag decides; once the registry has rules, or uses ENHANCED
scanning, only the rules do, and a repository no filter matches is scanned by hand only.
moto sets a frequency when the registry's rules are written, for the repositories that
exist then, and ignores the repository flag. Here it is worked out when asked, from the
registry's rules and the repository's flag; where several rules match, the most frequent
scan counts.
"""

from __future__ import annotations

from typing import Any

from moto.ecr.models import ECRBackend, Repository

STRENGTH = {"MANUAL": 0, "SCAN_ON_PUSH": 1, "CONTINUOUS_SCAN": 2}


def effective_scanning(backend: ECRBackend, repository: Repository) -> dict[str, Any]:
    registry = backend.registry_scanning_configuration
    on_push = bool((repository.image_scanning_configuration or {}).get("scanOnPush"))
    frequency, applied = "SCAN_ON_PUSH" if on_push else "MANUAL", []
    if registry.get("rules") or registry.get("scanType") == "ENHANCED":
        frequency = "MANUAL"
        for rule in registry.get("rules") or []:
            for wanted in rule["repositoryFilters"]:
                if backend._match_repository_filter(wanted["filter"], repository.name):
                    applied.append(wanted)
                    if STRENGTH[rule["scanFrequency"]] > STRENGTH[frequency]:
                        frequency = rule["scanFrequency"]
    return {
        "repositoryArn": repository.arn,
        "repositoryName": repository.name,
        "scanOnPush": on_push,
        "scanFrequency": frequency,
        "appliedScanFilters": applied,
    }


def batch_get_repository_scanning_configuration(
    self: ECRBackend, names: list[str]
) -> tuple[list[dict[str, Any]], list[str]]:
    found = [self.repositories[name] for name in names if name in self.repositories]
    return [effective_scanning(self, r) for r in found], [n for n in names if n not in self.repositories]


def install() -> None:
    ECRBackend.batch_get_repository_scanning_configuration = (  # type: ignore[method-assign]
        batch_get_repository_scanning_configuration
    )
