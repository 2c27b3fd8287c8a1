"""Report: the HTML page (plots, tables) of a results envelope, and the plain-text summary tables."""
