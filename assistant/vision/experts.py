"""Offline CPU experts that turn a camera frame into one short sentence for the prompt.

- visible text: RapidOCR (PP-OCRv4 ONNX models bundled in ``rapidocr-onnxruntime``), on one thread;
- faces: OpenCV's frontal-face Haar cascade (bundled in ``opencv-python-headless`` 4.x);
- light and colour: mean brightness and the dominant named colours of a thumbnail.

Each part is optional; a part that fails to load is skipped with a log line, so a missing package costs
that part, not the session.
"""

from __future__ import annotations

import logging

import numpy as np

log = logging.getLogger("assistant.vision")

OCR_MIN_SCORE = 0.6
ANALYSIS_SIDE = 960  # OCR and faces work on frames at most this large (the detector downsizes anyway)
FACE_SIDE = 480

# Named colours by hue (degrees, OpenCV's 0-180 scale doubled), for saturated pixels.
_HUES = [(15, "red"), (40, "orange"), (70, "yellow"), (160, "green"), (200, "cyan"), (255, "blue"),
         (290, "purple"), (335, "pink"), (360, "red")]


def _resize(frame: np.ndarray, side: int) -> np.ndarray:
    import cv2

    height, width = frame.shape[:2]
    scale = side / max(height, width)
    if scale >= 1:
        return frame
    return cv2.resize(frame, (max(1, int(width * scale)), max(1, int(height * scale))), interpolation=cv2.INTER_AREA)


def colour_name(hue_degrees: float, saturation: float, value: float) -> str:
    if value < 0.2:
        return "black"
    if saturation < 0.18:
        return "white" if value > 0.8 else "grey"
    if value < 0.55 and 15 <= hue_degrees < 45:
        return "brown"
    for limit, name in _HUES:
        if hue_degrees < limit:
            return name
    return "red"


def light_and_colours(frame: np.ndarray, top: int = 2) -> tuple[float, list[str]]:
    """(mean brightness 0-1, the dominant colour names, most common first)."""
    import cv2

    small = _resize(frame, 64)
    hsv = cv2.cvtColor(small, cv2.COLOR_RGB2HSV).reshape(-1, 3).astype(np.float32)
    hue, saturation, value = hsv[:, 0] * 2.0, hsv[:, 1] / 255.0, hsv[:, 2] / 255.0
    names = [colour_name(h, s, v) for h, s, v in zip(hue, saturation, value)]
    counts: dict[str, int] = {}
    for name in names:
        counts[name] = counts.get(name, 0) + 1
    ranked = sorted(counts, key=counts.__getitem__, reverse=True)
    dominant = [name for name in ranked[:top] if counts[name] >= 0.15 * len(names)]
    return float(value.mean()), dominant


class ExpertDescriber:
    """OCR + faces + light and colours; ``describe`` returns e.g.
    'Text in view: "BANANA BREAD". No face in view. A bright view, mostly white and yellow.'"""

    def __init__(self, ocr: bool = True, faces: bool = True, threads: int = 1) -> None:
        self.name = "experts"
        self._ocr = None
        self._faces = None
        if ocr:
            try:
                from rapidocr_onnxruntime import RapidOCR

                # One thread: the camera must not take the CPU from the audio path (2 cores in CI).
                self._ocr = RapidOCR(intra_op_num_threads=threads, inter_op_num_threads=1)
            except Exception as error:  # noqa: BLE001 - a missing/broken OCR package disables OCR only
                log.warning("OCR disabled: %s: %s", type(error).__name__, error)
        if faces:
            try:
                import cv2

                cv2.setNumThreads(1)  # run in the (low-priority) calling thread, not in a pool of its own
                # opencv-python's stubs leave out cv2.data (a plain module it adds at import)
                path = cv2.data.haarcascades + "haarcascade_frontalface_default.xml"  # type: ignore[attr-defined]
                cascade = cv2.CascadeClassifier(path)
                if cascade.empty():
                    raise RuntimeError(f"could not load {path} (OpenCV 5 ships no cascades: pin opencv < 5)")
                self._faces = cascade
            except Exception as error:  # noqa: BLE001
                log.warning("face detection disabled: %s: %s", type(error).__name__, error)

        # the first call sets up ONNX Runtime: not on a user's frame
        self.describe(np.full((96, 128, 3), 200, np.uint8))

    # --- the experts -----------------------------------------------------------------------------

    def read_text(self, frame: np.ndarray) -> list[str]:
        """Lines of visible text, top to bottom, left to right."""
        if self._ocr is None:
            return []
        bgr = np.ascontiguousarray(_resize(frame, ANALYSIS_SIDE)[:, :, ::-1])
        result, _ = self._ocr(bgr)
        lines = []
        for box, text, score in result or []:
            # The bundled recogniser is Chinese-English: a lone CJK glyph read off a face or a texture is noise.
            if float(score) >= OCR_MIN_SCORE and any(c.isascii() and c.isalnum() for c in text):
                top = min(point[1] for point in box)
                left = min(point[0] for point in box)
                lines.append((top, left, text.strip()))
        lines.sort(key=lambda line: (round(line[0] / 20), line[1]))  # rows of ~20 px, then left to right
        return [text for _, _, text in lines]

    def count_faces(self, frame: np.ndarray) -> int:
        if self._faces is None:
            return 0
        import cv2

        grey = cv2.equalizeHist(cv2.cvtColor(_resize(frame, FACE_SIDE), cv2.COLOR_RGB2GRAY))
        found = self._faces.detectMultiScale(grey, scaleFactor=1.1, minNeighbors=5, minSize=(30, 30))
        return len(found)

    # --- the sentence ----------------------------------------------------------------------------

    def describe(self, frame: np.ndarray) -> str:
        parts = []
        text = " ".join(self.read_text(frame))
        if text:
            parts.append(f'Text in view: "{text[:200]}".')
        if self._faces is not None:
            faces = self.count_faces(frame)
            parts.append({0: "No face in view.", 1: "One person's face in view."}.get(faces, f"{faces} faces in view."))
        brightness, colours = light_and_colours(frame)
        light = "a dark" if brightness < 0.25 else ("a dim" if brightness < 0.45 else "a bright")
        parts.append(f"{light.capitalize()} view" + (f", mostly {' and '.join(colours)}." if colours else "."))
        return " ".join(parts)
