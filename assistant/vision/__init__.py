"""Frame describers behind ``duplex.vision.FrameDescriber``: CPU experts (OCR, faces, colours) or a VLM."""
