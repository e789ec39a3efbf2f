"""Images: references (reference), configs (config), the image store (store), import/export
without a registry (importer), the host busybox image (busybox). See docs/storage-and-images.md."""
