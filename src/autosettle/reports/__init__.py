"""Reports: one source of numbers for the console, the API and the command line.

`charts.py` holds the one definition of a chart (a `Chart` of labelled series) and its
server-side SVG rendering; the console shows the SVG and the PDF reports draw the same
`Chart`, so a chart never says two different things in two places.
"""
