"""Assets that move on with the clock: the drop watch, billing periods and the end-of-run
job that refreshes both."""
