"""Where the course lives online: the one repository address, and the Colab and Binder links made from it.

The address is the **students'** repository, the public one that ``course publish`` writes (the
instructor's repository, with ``solutions/``, stays private and is never linked): Binder builds it,
Colab opens its notebooks and installs ``course_utils`` from it.

``REPOSITORY_URL`` is the only place the address is written; ``pyproject.toml`` repeats it under
``[project.urls]`` and ``tests/test_links.py`` keeps the two equal. ``course release`` builds the
Colab badge and the Colab install cell of every student notebook from these functions.

Importing this module has no side effects.
"""

from __future__ import annotations

from urllib.parse import quote

__all__ = [
    "REPOSITORY_URL", "BRANCH", "RELEASE_FOLDER", "github_slug", "colab_url", "binder_url",
    "pip_requirement", "colab_badge_markdown", "binder_badge_markdown",
]

# The students' public repository (a placeholder until the course is published): change it here (and in
# pyproject.toml's [project.urls]); `course publish` writes that repository.
REPOSITORY_URL = "https://github.com/torch-loop-course/pytorch-training-loop"
BRANCH = "main"
RELEASE_FOLDER = "notebooks"

COLAB_BADGE_SVG = "https://colab.research.google.com/assets/colab-badge.svg"
BINDER_BADGE_SVG = "https://mybinder.org/badge_logo.svg"
_GITHUB = "https://github.com/"


def github_slug(url: str = REPOSITORY_URL) -> str:
    """``owner/name`` of a GitHub repository address such as ``https://github.com/owner/name``."""
    if not url.startswith(_GITHUB):
        raise ValueError(f"the repository address must start with {_GITHUB}, got {url!r}")
    parts = url[len(_GITHUB):].rstrip("/").split("/")
    if len(parts) != 2 or not all(parts):
        raise ValueError(f"the repository address must be {_GITHUB}<owner>/<name>, got {url!r}")
    return "/".join(parts)


def _relative(path: str) -> str:
    cleaned = path.strip("/")
    if not cleaned or ".." in cleaned.split("/"):
        raise ValueError(f"expected a path inside the repository, got {path!r}")
    return cleaned


def colab_url(notebook_path: str) -> str:
    """The address that opens ``notebook_path`` (relative to the repository root) in Google Colab."""
    return f"https://colab.research.google.com/github/{github_slug()}/blob/{BRANCH}/{quote(_relative(notebook_path))}"


def binder_url(urlpath: str = f"lab/tree/{RELEASE_FOLDER}") -> str:
    """The mybinder.org address that builds the repository and opens JupyterLab at ``urlpath``."""
    return f"https://mybinder.org/v2/gh/{github_slug()}/{BRANCH}?urlpath={quote(urlpath, safe='')}"


def pip_requirement() -> str:
    """The requirement that installs ``course_utils`` straight from the repository (used in Colab)."""
    return f"course-utils @ git+{REPOSITORY_URL}@{BRANCH}"


def colab_badge_markdown(notebook_path: str) -> str:
    """A Markdown "Open in Colab" badge for ``notebook_path``."""
    return f"[![Open In Colab]({COLAB_BADGE_SVG})]({colab_url(notebook_path)})"


def binder_badge_markdown(urlpath: str = f"lab/tree/{RELEASE_FOLDER}") -> str:
    """A Markdown "launch binder" badge that opens JupyterLab at ``urlpath``."""
    return f"[![Binder]({BINDER_BADGE_SVG})]({binder_url(urlpath)})"
