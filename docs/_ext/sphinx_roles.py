"""A griffe extension for the API pages: vidtl's docstrings use Sphinx roles
(``:class:`~vidtl.models.classifier.VideoClassifier```, ``:meth:`forward_clips```), which
Markdown would show as written. Each role becomes inline code of the name it shows (the last
part with ``~``, the text of ``text <target>``), so no cross-reference can dangle under
``mkdocs build --strict``. Not part of the package; mkdocs.yml loads it by path."""

from __future__ import annotations

import re
from typing import Any

from griffe import Extension, Object

ROLE = re.compile(r":(?:py:)?(?:class|meth|func|mod|attr|data|obj|exc|const|ref|doc):"
                  r"`(?P<text>[^`]+)`")


def shown(target: str) -> str:
    """What Sphinx would show for a role's target."""
    named = re.fullmatch(r"(?P<text>.+?)\s*<[^>]+>", target)
    if named:
        return named["text"]
    if target.startswith("~"):
        return target[1:].rsplit(".", 1)[-1]
    return target.lstrip("!")


def without_roles(text: str) -> str:
    """``text`` with every Sphinx role written as inline code."""
    return ROLE.sub(lambda match: f"`{shown(match['text'])}`", text)


class SphinxRoles(Extension):
    """Rewrites the roles of every docstring as it is loaded."""

    def on_instance(self, *, obj: Object, **kwargs: Any) -> None:
        if obj.docstring is not None:
            obj.docstring.value = without_roles(obj.docstring.value)
