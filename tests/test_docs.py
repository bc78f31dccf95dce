"""The documents the code and the README point users to exist and say what the cluster path needs."""

from __future__ import annotations

import re

from conftest import ROOT

CITING = ["README.md", "cluster.yaml", "examples/*.py", "tests/*.py", "raynas/**/*.py", "trainables/**/*.py"]


def test_every_cited_document_exists():
    cited = {}
    for pattern in CITING:
        for path in ROOT.glob(pattern):
            for doc in re.findall(r"\bdocs/[\w./-]+\.md\b", path.read_text(encoding="utf-8")):
                cited.setdefault(doc, path.relative_to(ROOT).as_posix())
    assert "docs/cluster.md" in cited
    missing = {doc: where for doc, where in cited.items() if not (ROOT / doc).is_file()}
    assert not missing, f"cited but missing (document: first file citing it): {missing}"


def test_the_cluster_guide_covers_launch_jobs_storage_tokens_and_ports():
    guide = (ROOT / "docs" / "cluster.md").read_text(encoding="utf-8")
    for needed in ("ray up cluster.yaml", "ray dashboard cluster.yaml", "ray job submit", "ray down cluster.yaml",
                   "--storage", "s3://", "RAYNAS_STORAGE", "ray get-auth-token --generate",
                   "chmod 600 ~/.ray/auth_token", "RAY_AUTH_MODE=token", "6379", "8265", "127.0.0.1",
                   "run.max_failures", "run.checkpoints_to_keep", "run.experiment_name"):
        assert needed in guide, needed


def test_the_readme_says_to_make_the_token_file_private():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    generate = readme.index("ray get-auth-token --generate")
    assert "chmod 600 ~/.ray/auth_token" in readme[generate:generate + 400]
