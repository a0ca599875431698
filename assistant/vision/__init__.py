"""Frame describers behind ``duplex.models.FrameDescriber``: CPU experts (OCR, faces, colours) or a VLM."""
