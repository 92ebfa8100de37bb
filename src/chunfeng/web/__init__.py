"""The web application: FastAPI, Jinja2 templates and htmx, every asset shipped in the package."""
