"""Small local data sets for the examples (generated or bundled; nothing downloaded at run time)."""
