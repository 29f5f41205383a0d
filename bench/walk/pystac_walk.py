"""The peer: pystac's recursive walk of a catalog over HTTP. Prints the item count."""
import sys

import pystac

catalog = pystac.Catalog.from_file(sys.argv[1])
count = sum(1 for _ in catalog.get_items(recursive=True))
print(count)
