"""People → data sets: export identity folders, import other groups' zips, training roots."""
