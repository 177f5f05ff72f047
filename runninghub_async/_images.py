"""The image helpers' request building: model names to endpoints, arguments to bodies.

Everything here is pure: it turns ``text_to_image``/``edit_image`` arguments into
an endpoint path and a camelCase body, and checks them against the catalog
(`_catalog.ENDPOINTS`) so that a mistake is reported before anything is
uploaded or paid for.  The I/O (uploads, the submit) happens in the client.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import Any, BinaryIO, Literal, TypeAlias

from ._catalog import DEFAULT_MODEL, ENDPOINTS, MODELS, EndpointSpec, Violation, violations
from ._catalog import invalid_parameters as _invalid_parameters
from ._checks import data_uri_size
from ._errors import InvalidParametersError

__all__ = [
    "DEFAULT_MODEL",
    "ImageInput",
    "ImageTask",
    "check_images",
    "data_uri_size",
    "endpoint_for",
    "image_label",
    "image_params",
    "invalid_parameters",
    "is_image_url",
]

ImageInput: TypeAlias = str | os.PathLike[str] | bytes | BinaryIO
"""An input image: an ``http(s)://`` URL or ``data:`` URI (sent as is), or a local
file as a path, its bytes or a binary file object (uploaded first)."""

ImageTask: TypeAlias = Literal["text-to-image", "edit"]

_TASKS: Mapping[str, int] = {"text-to-image": 0, "edit": 1}


def endpoint_for(task: ImageTask, model: str) -> str:
    """The endpoint path of *model* for *task*.

    Raises:
        ValueError: *model* is not one of `_catalog.MODELS` (the message lists
            them), or *task* is neither ``"text-to-image"`` nor ``"edit"``.
    """
    if task not in _TASKS:
        raise ValueError(f'task must be "text-to-image" or "edit", got {task!r}')
    paths = MODELS.get(model) if isinstance(model, str) else None
    if paths is None:
        raise ValueError(f"unknown model {model!r}; known models: {', '.join(MODELS)}")
    return paths[_TASKS[task]]


def is_image_url(value: str) -> bool:
    """Whether *value* is something RunningHub takes as an image: an http(s) URL or data URI."""
    head = value[:8].lower()
    return head.startswith(("http://", "https://", "data:"))


def check_images(images: object, endpoint: str) -> list[ImageInput]:
    """*images* as a list after checking each one's kind (not its content).

    Raises:
        TypeError: *images* is not a list or tuple of images (a single image must
            be wrapped in a list), or one is of an unsupported type.
        InvalidParametersError: a str that is neither an http(s) URL nor a data
            URI (``field`` is ``imageUrls[i]``); local files are ``pathlib.Path``.
    """
    if isinstance(images, str | bytes | bytearray) or not isinstance(images, Sequence):
        raise TypeError(f"images must be a list of images, got {type(images).__name__}")
    checked: list[ImageInput] = []
    for index, image in enumerate(images):
        if isinstance(image, str):
            if not is_image_url(image):
                raise InvalidParametersError(
                    "local",
                    f"imageUrls[{index}]={image[:60]!r} is not an http(s) URL or data URI; "
                    "pass a local file as pathlib.Path",
                    endpoint=endpoint,
                    field=f"imageUrls[{index}]",
                    value=image,
                    allowed="an http(s) URL, a data: URI, a pathlib.Path, bytes or a file object",
                )
        elif not isinstance(image, os.PathLike | bytes | bytearray | memoryview) and not callable(
            getattr(image, "read", None)
        ):
            raise TypeError(
                f"images[{index}] must be a URL, a path, bytes or a binary file object, "
                f"got {type(image).__name__}"
            )
        checked.append(image)
    return checked


def image_label(image: object) -> str:
    """How errors name an input image: a URL or path as given, else what it is."""
    if isinstance(image, str):
        return image
    if isinstance(image, os.PathLike):
        return os.fsdecode(os.fspath(image))
    if isinstance(image, memoryview):
        return f"<{image.nbytes} bytes>"
    if isinstance(image, bytes | bytearray):
        return f"<{len(image)} bytes>"
    name = getattr(image, "name", None)
    return f"<file {name}>" if isinstance(name, str) else f"<{type(image).__name__}>"


def image_params(
    task: ImageTask,
    prompt: str,
    *,
    model: str = DEFAULT_MODEL,
    aspect_ratio: str | None = None,
    resolution: str | None = None,
    image_urls: Sequence[str] | None = None,
    image_sizes: Mapping[str, int] | None = None,
    validate: bool = True,
) -> tuple[str, dict[str, Any]]:
    """The endpoint path and request body of an image helper call, checked.

    An omitted ``resolution`` becomes the endpoint's documented default where
    the registry marks it required (``1k``; ``8k`` for ultra); an omitted
    ``aspectRatio`` stays omitted where it is optional (the output then follows
    the model's default or the input image) and becomes the documented default
    where it is required (nano-banana v1).

    Args:
        task: ``"text-to-image"`` or ``"edit"``.
        prompt: the prompt.
        model: a name from `_catalog.MODELS`.
        aspect_ratio: e.g. ``"16:9"``; None for the model's default.
        resolution: e.g. ``"2k"``; None for the model's default.  Models without
            a resolution setting (nano-banana v1, lite) refuse one.
        image_urls: the input images of an edit, as URLs.
        image_sizes: sizes in bytes of those images where known (local files);
            over the endpoint's per-image limit is an error.
        validate: check the body against the catalog (as ``RunningHub(validate=)``).

    Returns:
        ``(path, body)`` ready for ``RunningHub.submit``.

    Raises:
        ValueError: unknown *model* or *task*, or images given to text-to-image.
        InvalidParametersError: the body breaks the endpoint's schema; ``field``,
            ``value`` and ``allowed`` say how.
        FileTooLargeError: an image is larger than the endpoint accepts.
    """
    path = endpoint_for(task, model)
    spec = ENDPOINTS[path]
    body: dict[str, Any] = {"prompt": prompt}
    if task == "edit":
        if image_urls is not None:
            body["imageUrls"] = (
                list(image_urls)
                if isinstance(image_urls, Sequence) and not isinstance(image_urls, str | bytes)
                else image_urls
            )
    elif image_urls:
        raise ValueError("text-to-image takes no input images; use edit_image")
    ratio = spec.param("aspectRatio")
    if aspect_ratio is not None:
        body["aspectRatio"] = aspect_ratio
    elif ratio is not None and ratio.required:
        body["aspectRatio"] = ratio.default
    size = spec.param("resolution")
    if size is None:
        if resolution is not None:
            having = ", ".join(
                name for name, pair in MODELS.items() if ENDPOINTS[pair[0]].param("resolution")
            )
            raise InvalidParametersError(
                "local",
                f"model {model!r} ({path}) has no resolution setting; omit it, "
                f"or use a model that has one: {having}",
                endpoint=path,
                field="resolution",
                value=resolution,
                allowed="no resolution for this model",
            )
    elif resolution is not None:
        body["resolution"] = resolution
    elif size.required:
        body["resolution"] = size.default
    if validate:
        sizes = image_sizes or {}
        problems = violations(spec, body, image_sizes=sizes)
        if problems:
            raise invalid_parameters(spec, problems, sizes)
    return path, body


def invalid_parameters(
    spec: EndpointSpec, problems: Sequence[Violation], image_sizes: Mapping[str, int]
) -> InvalidParametersError:
    """The error (not raised) for *problems*, naming the first one's field.

    It is a `FileTooLargeError` when the first problem is an image over the
    endpoint's size limit.  (*image_sizes* is no longer needed: the violation
    says so itself.)
    """
    return _invalid_parameters(spec, problems)
