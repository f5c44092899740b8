"""What the pages share, by job: resources (shared by every session), state (the user's session), errors, widgets and
frame (the page's set-up, sidebar and navigation). Not a page: Streamlit only lists the .py files directly in pages/.
"""
