"""Storage: content-addressed layers (layers), container rootfs dirs (rootfs), named volumes
(volumes). See docs/storage-and-images.md."""
