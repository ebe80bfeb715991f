"""Project switcher (sidebar, every page) and project management (Home): create, open,
rename, delete with a confirm step, and each project's counts."""
from __future__ import annotations

from pathlib import Path

import streamlit as st

from engine.errors import EngineError
from engine.projects import (ProjectSummary, create_project, delete_project, list_projects,
                             rename_project)
from ui import state
from ui.errors import show_error

NEW_NAME = "project_new_name"
NEW_NAME_HOME = "project_new_name_home"
NEW_POPOVER = "project_new_popover"
SWITCHER = "project_switcher"
RENAME_TO = "project_rename_to"
CONFIRM_DELETE = "project_confirm_delete"
ERROR = "project_error"
FLASH = "project_flash"


def describe(project: ProjectSummary) -> str:
    """'245 photos · 2 classes · 1 training run' (the counts shown next to a name)."""
    def plural(count: int, one: str, many: str) -> str:
        return f"{count:,} {one if count == 1 else many}"
    return " · ".join((plural(project.photos, "photo", "photos"),
                       plural(project.classes, "class", "classes"),
                       plural(project.runs, "training run", "training runs")))


def _fail(err: EngineError) -> None:
    st.session_state[ERROR] = err


def _create(root: Path, key: str = NEW_NAME) -> None:
    name = st.session_state.get(key, "")
    try:
        workspace = create_project(root, name)
    except EngineError as err:
        _fail(err)
        return
    state.choose_project(workspace.root.name)
    st.session_state[key] = ""                  # an empty box and a closed "New project"
    st.session_state[NEW_POPOVER] = False
    st.session_state[FLASH] = (f"Created the project '{workspace.root.name}'. It is empty: "
                               "add photos on the Data page.")


def _switch(root: Path) -> None:
    state.choose_project(st.session_state[SWITCHER])


def _open(name: str) -> None:
    state.choose_project(name)


def _rename(root: Path, old: str) -> None:
    try:
        folder = rename_project(root, old, st.session_state.get(RENAME_TO, ""))
    except EngineError as err:
        _fail(err)
        return
    state.forget_opened()
    state.choose_project(folder.name)
    st.session_state[FLASH] = f"Renamed '{old}' to '{folder.name}'."


def _delete(root: Path, name: str) -> None:
    try:
        delete_project(root, name)
    except EngineError as err:
        st.session_state.pop(CONFIRM_DELETE, None)
        _fail(err)
        return
    state.forget_opened()
    for key in list(st.session_state):
        del st.session_state[key]
    st.query_params.pop(state.PROJECT_PARAMETER, None)
    st.session_state[FLASH] = (f"Deleted the project '{name}'. Your original photo files "
                               "were not touched.")


def render_messages() -> None:
    """The outcome of the last project action (shown at the top of the page by the frame)."""
    error = st.session_state.pop(ERROR, None)
    if error is not None:
        show_error(error)
    flash = st.session_state.pop(FLASH, None)
    if flash:
        st.success(flash)


def _render_create(root: Path) -> None:
    with st.popover("New project", icon=":material/add:", use_container_width=True,
                    key=NEW_POPOVER, on_change="rerun"):
        st.text_input("Name of the new project", key=NEW_NAME, max_chars=80,
                      placeholder="Ants and bees")
        st.button("Create", key="project_create", type="primary", on_click=_create,
                  args=(root,))


def render_sidebar(project: state.CurrentProject | None) -> None:
    """The current project's name and counts, a switcher and "New project" (every page)."""
    with st.sidebar:
        if project is not None and project.is_direct:
            st.markdown(f"**Project:** {project.name}")
            st.caption(f"Opened directly from the folder {project.workspace.root}.")
            return
        root = state.projects_root()
        projects = list_projects(root)
        names = [item.name for item in projects]
        if project is None:
            st.markdown("**No project yet**")
        else:
            st.session_state[SWITCHER] = project.name
            by_name = {item.name: item for item in projects}
            st.selectbox("Project", names, key=SWITCHER, on_change=_switch, args=(root,),
                         help="Each project has its own photos, labels and trained models.")
            if project.name in by_name:
                st.caption(describe(by_name[project.name]))
        _render_create(root)


def render_manager(project: state.CurrentProject | None) -> None:
    """Home's project section: every project with its counts and an Open button, and
    rename / delete (with a confirm step) for the open one."""
    if project is not None and project.is_direct:
        return
    root = state.projects_root()
    projects = list_projects(root)
    st.subheader("Projects")
    for item in projects:
        left, middle, right = st.columns([3, 4, 1], vertical_alignment="center")
        is_open = project is not None and item.name == project.name
        left.markdown(f"**{item.name}**" + (" (open)" if is_open else ""))
        middle.caption(describe(item))
        right.button("Open", key=f"project_open_{item.name}", disabled=is_open,
                     on_click=_open, args=(item.name,))
    if not projects:
        st.info("There is no project yet. Create one: give it a name below.")
        st.text_input("Name of the new project", key=NEW_NAME_HOME, max_chars=80,
                      placeholder="Ants and bees")
        st.button("Create project", key="project_create_home", type="primary",
                  on_click=_create, args=(root, NEW_NAME_HOME))
        return
    if project is not None:
        _render_rename_delete(root, project.name)


def _render_rename_delete(root: Path, name: str) -> None:
    with st.expander(f"Rename or delete '{name}'"):
        st.text_input("New name", value=name, key=RENAME_TO, max_chars=80)
        st.button("Rename", key="project_rename", on_click=_rename, args=(root, name))
        if st.session_state.get(CONFIRM_DELETE) != name:
            st.button("Delete this project…", key="project_delete", icon=":material/delete:",
                      on_click=lambda: st.session_state.update({CONFIRM_DELETE: name}))
            return
        st.warning(f"Delete '{name}'? Its copies of the photos, its labels and its trained "
                   "models are removed for good. Your original photo files are not touched.")
        yes, no = st.columns(2)
        yes.button("Delete for good", key="project_delete_confirm", type="primary",
                   on_click=_delete, args=(root, name))
        no.button("Keep it", key="project_delete_cancel",
                  on_click=lambda: st.session_state.pop(CONFIRM_DELETE, None))
