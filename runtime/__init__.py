"""runtime: the container engine. Knows containers, images, networks, volumes; never YAML."""
