"""Figures for papers: rows of images (each with its class) × columns of methods, computed from the images' cached
Analyses and exported with matplotlib as PNG, PDF or SVG."""

from cam_core.figures.export import draw, export, grid_shape
from cam_core.figures.layout import COLORBARS, FORMATS, VIEWS, Layout, format_of
from cam_core.figures.rows import DEFAULT_METHODS, Column, FigureMaps, Row, compute_maps

__all__ = ["COLORBARS", "DEFAULT_METHODS", "FORMATS", "VIEWS", "Column", "FigureMaps", "Layout", "Row",
           "compute_maps", "draw", "export", "format_of", "grid_shape"]
