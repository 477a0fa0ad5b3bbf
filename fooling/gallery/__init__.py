"""Static galleries of runs, drawn with PIL: the page (build, page), contact sheets and heatmaps."""
