"""The model stages: caption, ocr, asr (speech), llm (tweet writer) and the prompt between them."""
