"""CAM Explorer's pages. The dashboard is a classic Streamlit multipage app: app.py is the home page and every other
.py file in this folder is a page (Streamlit's page discovery skips this __init__.py and the sub-package ui/, which
holds what the pages share). It stays with the pages/ folder rather than st.navigation because a visitor who
landed first on /compare got Streamlit's pages-folder mode, in which app.py never ran (narrow layout, every file
listed). Streamlit only here; all CAM arithmetic lives in cam_core.
"""

# Streamlit and plotly import pandas on first use, and plotly takes it from sys.modules as soon as it appears there:
# two sessions drawing their first chart at the same moment then saw a half-imported pandas ("partially initialized
# module 'pandas' has no attribute 'Series"). Importing it with this package, which every page imports first (through
# pages.ui), finishes it before any page runs.
import pandas  # noqa: F401 - imported once here, before sessions race to import it lazily
