"""Projects: one workspace folder per project, all under one projects root.

Layout::

    projects/                  the root (default ``projects/`` beside the app)
      Sample project/          made on the first start, never mixed into another project
      Ants and bees/           a workspace: studio.db, store/, normalized/, cache/, runs/
      weights/                 weights files of this computer, shared by every project

A project's folder name is its name. Deleting a project removes its folder only: the
workspace holds copies of the imported photos (``store/``), never the user's originals.
The root is chosen by ``--projects-root``, else ``$STUDIO_PROJECTS_ROOT``, else the default;
``--workspace PATH`` / ``$STUDIO_WORKSPACE`` bypasses projects and opens one folder directly.
"""
from __future__ import annotations

import os
import shutil
import sqlite3
import unicodedata
from dataclasses import dataclass
from pathlib import Path

from engine import jobs
from engine.errors import ProjectError, WorkspaceError
from engine.ingest.overview import count_photos
from engine.workspace import DATABASE_NAME, Workspace, open_workspace

__all__ = ["DEFAULT_PROJECTS_ROOT", "PROJECTS_ROOT_ENV", "SAMPLE_PROJECT_NAME", "ProjectSummary",
           "WEIGHTS_LIBRARY_FOLDER", "create_project", "delete_project", "ensure_sample_project", "find_project", "is_sample_project",
           "list_projects", "open_project", "rename_project", "resolve_projects_root",
           "validate_project_name", "weights_library_dir"]

PROJECTS_ROOT_ENV = "STUDIO_PROJECTS_ROOT"
DEFAULT_PROJECTS_ROOT = Path(__file__).resolve().parent.parent / "projects"
SAMPLE_PROJECT_NAME = "Sample project"
# Written in the root once the sample project was made, so deleting it is final.
SAMPLE_MARKER = ".sample-project-made"
# Weights files belong to the computer, not to one project: uploaded once, offered to all.
WEIGHTS_LIBRARY_FOLDER = "weights"
MAX_NAME_LENGTH = 80
FORBIDDEN_CHARACTERS = set('/\\:*?"<>|')
# Names Windows refuses for a folder (a projects root may sit on a shared drive).
RESERVED_NAMES = {"con", "prn", "aux", "nul", *(f"com{i}" for i in range(1, 10)),
                  *(f"lpt{i}" for i in range(1, 10))}



@dataclass(frozen=True)
class ProjectSummary:
    """One project as the project list shows it.

    Attributes:
        name: the project's name (= its folder name).
        path: absolute folder path.
        photos: usable photos, by the app's one definition (engine.ingest.overview).
        classes: classes with at least one labeled photo.
        runs: training runs of any status.
    """
    name: str
    path: Path
    photos: int
    classes: int
    runs: int


def resolve_projects_root(explicit: str | Path | None = None) -> Path:
    """The projects root: the explicit argument, else $STUDIO_PROJECTS_ROOT, else
    ``projects/`` beside the app. Not created here."""
    chosen = explicit or os.environ.get(PROJECTS_ROOT_ENV) or DEFAULT_PROJECTS_ROOT
    return Path(chosen).expanduser().resolve()


def validate_project_name(name: str) -> str:
    """The name, trimmed, if it can be a folder name on any common system.

    Raises:
        ProjectError: empty, too long, a character a folder name cannot hold, or a reserved
            name; the message says which.
    """
    cleaned = unicodedata.normalize("NFC", str(name)).strip()
    if not cleaned:
        raise ProjectError("Give the project a name, for example 'Ants and bees'.")
    if len(cleaned) > MAX_NAME_LENGTH:
        raise ProjectError(f"The project name is {len(cleaned)} characters long; use at most "
                           f"{MAX_NAME_LENGTH}.")
    bad = sorted({c for c in cleaned if c in FORBIDDEN_CHARACTERS or not c.isprintable()})
    if bad:
        shown = " ".join(repr(c)[1:-1] for c in bad)
        raise ProjectError(f"A project name cannot contain {shown}. Use letters, numbers, "
                           "spaces, '-' or '_'.")
    if cleaned.startswith(".") or cleaned.endswith("."):
        raise ProjectError("A project name cannot start or end with a dot.")
    if cleaned.casefold() == WEIGHTS_LIBRARY_FOLDER:
        raise ProjectError(f"'{cleaned}' is the folder where this computer keeps its weights "
                           "files; choose another project name.")
    if cleaned.split(".")[0].casefold() in RESERVED_NAMES:
        raise ProjectError(f"'{cleaned}' is a name computers keep for themselves; choose "
                           "another project name.")
    return cleaned


def weights_library_dir(root: str | Path) -> Path:
    """``<projects root>/weights/``: the weights files of this computer, which every project
    under the root (and a workspace opened directly) lists on its Train page. Not created."""
    return Path(root) / WEIGHTS_LIBRARY_FOLDER


def list_projects(root: str | Path) -> list[ProjectSummary]:
    """Every project under ``root``, sorted by name (case-insensitive); an absent root has none.

    The counts are read from each project's database without migrating it.
    """
    root = Path(root)
    if not root.is_dir():
        return []
    folders = [path for path in root.iterdir()
               if path.is_dir() and (path / DATABASE_NAME).is_file()]
    return [_summarize(folder) for folder in sorted(folders, key=lambda p: p.name.casefold())]


def _summarize(folder: Path) -> ProjectSummary:
    workspace = Workspace(folder.resolve())
    try:
        photos = count_photos(workspace)
        with workspace.connect() as connection:
            runs = int(connection.execute("SELECT COUNT(*) FROM runs").fetchone()[0])
    except sqlite3.Error:  # a damaged or foreign database: listed with zero counts
        return ProjectSummary(folder.name, workspace.root, 0, 0, 0)
    return ProjectSummary(folder.name, workspace.root, photos.num_photos, photos.num_classes, runs)


def find_project(root: str | Path, name: str) -> Path:
    """The folder of the project called ``name`` (exact name, else the only case-insensitive
    match).

    Raises:
        ProjectError: no such project under ``root``.
    """
    root = Path(root)
    wanted = unicodedata.normalize("NFC", str(name)).strip()
    projects = list_projects(root)
    for project in projects:
        if project.name == wanted:
            return project.path
    matches = [p.path for p in projects if p.name.casefold() == wanted.casefold()]
    if len(matches) == 1:
        return matches[0]
    known = ", ".join(p.name for p in projects) or "none yet"
    raise ProjectError(f"There is no project called '{wanted}' in {root} (projects: {known}).")


def _refuse_taken(root: Path, name: str, ignore: Path | None = None) -> None:
    for path in (root.iterdir() if root.is_dir() else ()):
        if path.name.casefold() == name.casefold() and path != ignore:
            raise ProjectError(f"There is already a project (or folder) called '{path.name}' "
                               f"in {root}. Choose another name.")


def create_project(root: str | Path, name: str) -> Workspace:
    """Create an empty project called ``name`` under ``root`` (the root is created too).

    Returns:
        The new project's :class:`Workspace`.
    Raises:
        ProjectError: the name is not valid or is taken.
        WorkspaceError: the folder cannot be created.
    """
    root = Path(root)
    cleaned = validate_project_name(name)
    _refuse_taken(root, cleaned)
    return open_workspace(root / cleaned)


def open_project(root: str | Path, name: str) -> Workspace:
    """Open (and migrate) an existing project.

    Raises:
        ProjectError: no such project.
        WorkspaceError: its database cannot be read.
    """
    return open_workspace(find_project(root, name))


def _refuse_while_training(folder: Path, doing: str) -> None:
    try:
        active = jobs.active_job(Workspace(folder))
    except sqlite3.Error:  # a database too damaged to read runs no job
        return
    if active is not None:
        raise ProjectError(f"The project '{folder.name}' is training now. Halt or cancel the "
                           f"training on its Train page, then {doing} the project.",
                           detail=f"Training run folder: {active.id}")


def rename_project(root: str | Path, old: str, new: str) -> Path:
    """Rename a project (its folder). Refused while it trains.

    Returns:
        The project's new folder.
    Raises:
        ProjectError: no project ``old``, ``new`` not valid or taken, or a training job runs.
    """
    root = Path(root)
    folder = find_project(root, old)
    cleaned = validate_project_name(new)
    if cleaned == folder.name:
        return folder
    _refuse_taken(root, cleaned, ignore=folder)
    _refuse_while_training(folder, "rename")
    target = root / cleaned
    try:
        folder.rename(target)
    except OSError as err:
        raise ProjectError(f"Could not rename '{folder.name}' to '{cleaned}': {err.strerror}. "
                           "Close other programs using its folder and try again.") from err
    return target.resolve()


def delete_project(root: str | Path, name: str) -> Path:
    """Delete a project's folder: its database, its copies of the photos, its runs. The
    user's original files are not in it and are never touched. Refused while it trains.

    Returns:
        The folder that was removed.
    Raises:
        ProjectError: no such project, or a training job runs in it.
    """
    root = Path(root).resolve()
    folder = find_project(root, name)
    if folder.parent != root or not (folder / DATABASE_NAME).is_file():
        raise ProjectError(f"Refused to delete {folder}: it is not a project folder of {root}.")
    _refuse_while_training(folder, "delete")
    try:
        shutil.rmtree(folder)
    except OSError as err:
        raise ProjectError(f"Could not delete every file of '{folder.name}' ({err}). Close "
                           "other programs using its folder and delete it again.") from err
    return folder


def ensure_sample_project(root: str | Path) -> Path | None:
    """On the first start of a projects root (no sample made yet and no project in it),
    create the empty "Sample project" folder; the Home page then imports the sample photos
    into it. Later starts, and roots whose sample was deleted, get nothing.

    Returns:
        The sample project's folder when it was created now, else None.
    Raises:
        WorkspaceError: the root cannot be created or written.
    """
    root = Path(root)
    marker = root / SAMPLE_MARKER
    if marker.exists() or list_projects(root):
        return None
    try:
        root.mkdir(parents=True, exist_ok=True)
        workspace = open_workspace(root / SAMPLE_PROJECT_NAME)
        marker.write_text("The sample project was made once; delete this file to make it "
                          "again.\n")
    except OSError as err:
        raise WorkspaceError(f"Cannot create the projects folder {root}: {err.strerror}. "
                             "Choose a folder you can write to with --projects-root or "
                             f"{PROJECTS_ROOT_ENV}.") from err
    return workspace.root


def is_sample_project(workspace: Workspace) -> bool:
    """True for the project made as the sample (by its folder name under a projects root)."""
    return workspace.root.name == SAMPLE_PROJECT_NAME
