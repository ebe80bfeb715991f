"""``python -m engine projects list|create|rename|delete``: the projects under one root."""
from __future__ import annotations

import argparse
import json
from dataclasses import asdict

from engine.projects import (PROJECTS_ROOT_ENV, create_project, delete_project, list_projects,
                             rename_project, resolve_projects_root)


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "projects", help="list, create, rename or delete projects",
        description="A project is one workspace folder under the projects root. Deleting a "
                    "project removes its folder (its copies of the photos, labels and runs); "
                    "your original files are never touched.")
    actions = parser.add_subparsers(dest="action", required=True)
    commands = {
        "list": actions.add_parser("list", help="every project with its photo, class and run "
                                                'counts ({"projects": [...]} with --json)'),
        "create": actions.add_parser("create", help="create an empty project"),
        "rename": actions.add_parser("rename", help="rename a project (not while it trains)"),
        "delete": actions.add_parser("delete", help="delete a project (not while it trains)"),
    }
    commands["create"].add_argument("name")
    commands["rename"].add_argument("name")
    commands["rename"].add_argument("new_name")
    commands["delete"].add_argument("name")
    for command in commands.values():
        command.add_argument("--projects-root", help=f"projects folder (default: "
                                                     f"${PROJECTS_ROOT_ENV} or ./projects)")
        command.add_argument("--json", action="store_true", help="print JSON")
    parser.set_defaults(func=run)


def _project_json(project) -> dict:
    return {**asdict(project), "path": str(project.path)}


def run(arguments: argparse.Namespace) -> int:
    root = resolve_projects_root(arguments.projects_root)
    if arguments.action == "list":
        projects = list_projects(root)
        if arguments.json:
            print(json.dumps({"projects": [_project_json(p) for p in projects]}, indent=2))
        else:
            for project in projects or ():
                print(f"{project.name}: {project.photos} photos, {project.classes} classes, "
                      f"{project.runs} runs  ({project.path})")
            if not projects:
                print(f"No projects in {root}.")
        return 0
    if arguments.action == "create":
        path = create_project(root, arguments.name).root
        result, text = {"created": path.name}, f"Created the project '{path.name}' in {path}."
    elif arguments.action == "rename":
        path = rename_project(root, arguments.name, arguments.new_name)
        result = {"renamed": arguments.name, "to": path.name}
        text = f"Renamed '{arguments.name}' to '{path.name}'."
    else:
        path = delete_project(root, arguments.name)
        result = {"deleted": path.name}
        text = f"Deleted the project '{path.name}' ({path}); original files were not touched."
    print(json.dumps({**result, "path": str(path)}) if arguments.json else text)
    return 0
