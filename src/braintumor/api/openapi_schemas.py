"""The data schemas of the OpenAPI document (:mod:`braintumor.api.openapi`): the answers,
their parts and the error shape, with every error code the API answers with."""

from __future__ import annotations

from typing import Any

from braintumor.errors import ERROR_CODES

_REF = "#/components"


def ref(kind: str, name: str) -> dict[str, str]:
    return {"$ref": f"{_REF}/{kind}/{name}"}


def nullable(schema: dict[str, Any]) -> dict[str, Any]:
    return {"anyOf": [schema, {"type": "null"}]}


def schemas() -> dict[str, Any]:
    number = {"type": "number"}
    percent_map = {"type": "object", "additionalProperties": number,
                   "description": "class name -> percentage (two decimals, sum 100)"}
    ood = {
        "type": "object", "required": ["flagged", "score", "threshold", "reasons"],
        "description": "The not-a-brain-MRI decision (OOD_POLICY).",
        "properties": {
            "flagged": {"type": "boolean"},
            "score": nullable(number),
            "threshold": nullable(number),
            "reasons": {"type": "array", "items": {"type": "string"}},
        },
    }
    window = {"type": "object", "required": ["center", "width", "source"], "properties": {
        "center": nullable(number), "width": nullable(number),
        "source": {"enum": ["file", "voi_lut", "fallback"]}}}
    dicom = {
        "type": "object",
        "description": "Non-identifying facts of a DICOM upload (no patient data).",
        "required": ["modality", "rows", "columns", "bits_stored",
                     "photometric_interpretation", "number_of_frames", "frame", "window",
                     "transfer_syntax"],
        "properties": {
            "modality": nullable({"type": "string"}),
            "rows": {"type": "integer"}, "columns": {"type": "integer"},
            "bits_stored": nullable({"type": "integer"}),
            "photometric_interpretation": {"type": "string"},
            "number_of_frames": {"type": "integer"}, "frame": {"type": "integer"},
            "window": nullable(window),
            "transfer_syntax": {"type": "string"},
            "warning": {"type": "string"},
        },
    }
    png = {"type": "string", "contentEncoding": "base64", "contentMediaType": "image/png"}
    visualization = {
        "type": "object", "required": ["heatmap_overlay", "original_image", "heatmap_only"],
        "properties": {"heatmap_overlay": png, "original_image": png, "heatmap_only": png},
    }
    localization = {
        "type": "object",
        "description": (
            "Where the tumour is: only from a model with a segmentation output. The "
            "outline (probability above 0.5), mapped back to the upload's pixels through "
            "the model's framing; heatmap_only stays the Grad-CAM map."),
        "required": ["found", "box", "area_px", "area_mm2", "mask_png"],
        "properties": {
            "found": {"type": "boolean",
                      "description": "false when the outline is empty (e.g. No Tumor)"},
            "box": nullable({
                "type": "object", "required": ["x", "y", "width", "height"],
                "description": "The outline's bounding box in upload pixels (x, y: its "
                               "top-left corner); null when nothing was found",
                "properties": {name: {"type": "integer", "minimum": 0}
                               for name in ("x", "y", "width", "height")}}),
            "area_px": {"type": "integer", "minimum": 0,
                        "description": "The outline's area in upload pixels"},
            "area_mm2": nullable({"type": "number", "minimum": 0,
                                  "description": "The area in mm², from a DICOM file's "
                                                 "Pixel Spacing; null when not known"}),
            "mask_png": {**png, "description": "The outline as a grey PNG of the upload's "
                                               "size: 255 inside, 0 outside"},
        },
    }
    prediction = {
        "type": "object", "required": ["class", "class_id", "confidence", "probabilities"],
        "properties": {"class": {"type": "string"}, "class_id": {"type": "integer"},
                       "confidence": number, "probabilities": percent_map},
    }
    timestamp = {"type": "string", "description": "ISO-8601 UTC with milliseconds and Z",
                 "pattern": r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$"}
    slice_answer = {
        "type": "object",
        "required": ["index", "position", "refused", "class", "class_id", "confidence",
                     "probabilities", "tumour_probability", "ood"],
        "properties": {
            "index": {"type": "integer"}, "position": nullable(number),
            "refused": {"type": "boolean"},
            "class": nullable({"type": "string"}), "class_id": nullable({"type": "integer"}),
            "confidence": nullable(number), "probabilities": nullable(percent_map),
            "tumour_probability": nullable(number),
            "ood": nullable(ref("schemas", "Ood")),
            "assessed": {"type": "boolean",
                         "description": "answered and showing enough brain to be judged; "
                                        "only assessed slices can call a tumour"},
            "brain_area_cm2": {**nullable(number),
                               "description": "the slice's brain area (intensity and "
                                              "morphology); null without a pixel spacing"},
        },
    }
    return {
        "Error": {
            "type": "object", "required": ["success", "error", "timestamp"],
            "properties": {
                "success": {"const": False},
                "error": {"type": "object", "required": ["message", "code", "status"],
                          "properties": {"message": {"type": "string"},
                                         "code": {"enum": list(ERROR_CODES)},
                                         "status": {"type": "integer"}}},
                "timestamp": timestamp,
            },
        },
        "Timestamp": timestamp,
        "Ood": ood,
        "Dicom": dicom,
        "Visualization": visualization,
        "Localization": localization,
        "Prediction": prediction,
        "ClassifyResponse": {
            "type": "object",
            "required": ["success", "prediction", "visualization", "ood",
                         "processing_time_ms", "timestamp"],
            "properties": {
                "success": {"const": True},
                "prediction": ref("schemas", "Prediction"),
                "visualization": ref("schemas", "Visualization"),
                "ood": ref("schemas", "Ood"),
                "dicom": ref("schemas", "Dicom"),
                "localization": ref("schemas", "Localization"),
                "processing_time_ms": number,
                "timestamp": ref("schemas", "Timestamp"),
            },
        },
        "SliceAnswer": slice_answer,
        "SeriesResponse": {
            "type": "object",
            "required": ["success", "series", "slices", "summary", "key_slice",
                         "processing_time_ms", "timestamp"],
            "properties": {
                "success": {"const": True},
                "series": {
                    "type": "object",
                    "required": ["source", "slice_count", "modality", "orientation",
                                 "ordered_by", "rows", "columns", "slice_spacing_mm",
                                 "files_ignored"],
                    "properties": {
                        "source": {"enum": ["dicom", "zip", "nifti"]},
                        "slice_count": {"type": "integer"},
                        "modality": nullable({"type": "string"}),
                        "orientation": nullable({"type": "string"}),
                        "ordered_by": {"type": "string"},
                        "rows": {"type": "integer"}, "columns": {"type": "integer"},
                        "slice_spacing_mm": nullable(number),
                        "files_ignored": {"type": "integer"},
                        "warning": {"type": "string"},
                    },
                },
                "slices": {"type": "array", "items": ref("schemas", "SliceAnswer")},
                "summary": {
                    "type": "object",
                    "required": ["class", "class_id", "confidence", "probabilities",
                                 "tumour_probability", "slices_answered", "slices_refused",
                                 "class_counts", "key_slice", "rule"],
                    "properties": {
                        "class": {"type": "string"}, "class_id": {"type": "integer"},
                        "confidence": number, "probabilities": percent_map,
                        "tumour_probability": nullable(number),
                        "slices_answered": {"type": "integer"},
                        "slices_refused": {"type": "integer"},
                        "class_counts": {"type": "object",
                                         "additionalProperties": {"type": "integer"}},
                        "key_slice": {"type": "integer"}, "rule": {"type": "string"},
                        "assessed_slices": {
                            "type": "integer",
                            "description": "answered slices showing enough brain to count"},
                        "not_assessed": {
                            "type": "array", "items": {"type": "integer"},
                            "description": "indices of the answered slices not assessed "
                                           "(vertex, skull base, neck, outside the head)"},
                        "supporting_slices": {
                            "type": "array", "items": {"type": "integer"},
                            "description": "indices of the slices the tumour call rests "
                                           "on; empty when the series is No Tumor"},
                        "slice_threshold": {
                            "type": "number", "minimum": 0, "maximum": 100,
                            "description": "tumour probability (percent) a counted slice "
                                           "needed to call a tumour in this series: the "
                                           "model's own volume threshold when it carries "
                                           "one, else the rule's default"},
                    },
                },
                "key_slice": {"allOf": [ref("schemas", "SliceAnswer"), {
                    "required": ["visualization"],
                    "properties": {"visualization": ref("schemas", "Visualization"),
                                   "dicom": ref("schemas", "Dicom"),
                                   "localization": ref("schemas", "Localization")}}]},
                "processing_time_ms": number,
                "timestamp": ref("schemas", "Timestamp"),
            },
        },
        "Probe": {"type": "object", "required": ["status", "timestamp"], "properties": {
            "status": {"enum": ["alive", "ready", "draining"]},
            "timestamp": ref("schemas", "Timestamp")}},
    }
