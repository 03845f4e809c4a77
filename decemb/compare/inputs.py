"""A comparison's tasks, loaded and checked before any model loads; problems name the task's key."""

from __future__ import annotations

from pathlib import Path

from tqdm.auto import tqdm

from decemb.compare.config import ComparisonConfig
from decemb.errors import ConfigError
from decemb.records import NotUtf8Error
from decemb.rendering import check_text
from decemb.tasks import Task, TaskDataError, load_task

__all__ = ["check_texts", "load_tasks"]


def load_tasks(config: ComparisonConfig, root: Path, show_progress: bool) -> list[Task]:
    """Every task of ``config``, its data read from under ``root``; data problems are ``ConfigError``."""
    tasks = []
    for index, task_config in enumerate(tqdm(config.tasks, desc="Loading tasks", disable=not show_progress)):
        try:
            tasks.append(load_task(task_config, root))
        except TaskDataError as error:
            cause = error.__cause__
            if isinstance(cause, NotUtf8Error):  # decemb.records names the line and the byte
                files = [getattr(task_config, key, None) for key in ("path", "train", "test")]
                shown = ", ".join(repr(f) for f in files if f)
                raise ConfigError(
                    f"task {task_config.name!r}: its data ({shown}) is not UTF-8 text ({cause.reason} at byte "
                    f"{cause.start}, line {cause.line}); re-save it as UTF-8",
                    key=f"tasks[{index}]",
                ) from None
            raise ConfigError(str(error), key=f"tasks[{index}]") from None
        except OSError as error:  # e.g. permission denied; the message names the file
            raise ConfigError(
                f"task {task_config.name!r}: cannot read its data ({error})", key=f"tasks[{index}]"
            ) from None
        check_texts(tasks[-1], index)
    return tasks


def check_texts(task: Task, index: int) -> None:
    """Refuse, before any model loads, a text that no tokenizer can read (e.g. a lone surrogate from a
    JSON ``"\\ud800"`` escape), naming the task, the side and the text."""
    for key, request in task.requests().items():
        for row, text in enumerate(request.texts):
            try:
                check_text(row, text)
            except (TypeError, ValueError) as error:
                shown = text[:40] if isinstance(text, str) else text
                raise ConfigError(
                    f"task {task.name!r}: text {row} of {key!r} ({shown!r}) {str(error).removeprefix(f'input {row} ')}",
                    key=f"tasks[{index}]",
                ) from None
