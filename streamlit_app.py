"""EfficientNet Studio: ``streamlit run streamlit_app.py [-- --projects-root DIR | --workspace PATH]``.

The entry point only declares the pages (so the sidebar reads Home, Data, Label, ...); the
home page itself is app_pages/0_Home.py. Every page opens through ui/frame.py, which picks the
project (one workspace folder under the projects root, see engine/projects.py) and shows its
name in the sidebar.

The page files live in ``app_pages/``, not ``pages/``: Streamlit treats a folder named
``pages/`` beside the entry point as its older multipage mode, and a first visit straight to a
page's address (a bookmark of /Train after the app restarted) then ran that page alone, with
a sidebar of file names and "streamlit app", no sample project, no icons.
"""
from __future__ import annotations

import streamlit as st

PAGES = [
    st.Page("app_pages/0_Home.py", title="Home", icon="🧪", default=True),
    st.Page("app_pages/1_Data.py", title="Data", icon="🗂️", url_path="Data"),
    st.Page("app_pages/2_Label.py", title="Label", icon="🏷️", url_path="Label"),
    st.Page("app_pages/3_Train.py", title="Train", icon="🏋️", url_path="Train"),
    st.Page("app_pages/4_Results.py", title="Results", icon="🔎", url_path="Results"),
    st.Page("app_pages/5_Predict.py", title="Predict", icon="🔮", url_path="Predict"),
    st.Page("app_pages/6_Compare.py", title="Compare", icon="⚖️", url_path="Compare"),
]

page = st.navigation(PAGES)
# The first open imports the engine and may make the sample project (seconds): say so instead
# of leaving the main area blank. The spinner goes once the page has drawn.
with st.spinner("Opening the page…"):
    page.run()
