"""The spec's four endpoints."""

from __future__ import annotations

import logging

from flask import Blueprint, current_app, jsonify, request

from braintumor import __version__
from braintumor.api import frontend
from braintumor.api.observability import note_answer, note_uploads
from braintumor.api.service import service
from braintumor.api.spark_status import spark_status
from braintumor.classify import utc_timestamp
from braintumor.decoding import ALLOWED_EXTENSIONS, parse_frame
from braintumor.dicom import DICOM_EXTENSIONS
from braintumor.errors import EmptyFilenameError, FileTooLargeError, NoFileError
from braintumor.model.runtime import runtime_of

log = logging.getLogger(__name__)
bp = Blueprint("api", __name__)

CLASS_DESCRIPTIONS = {
    "Glioma": "A type of tumor that occurs in the brain and spinal cord, arising from the "
              "glial cells that surround and support nerve cells.",
    "Meningioma": "A tumor that arises from the meninges, the membranes that surround the "
                  "brain and spinal cord. Most meningiomas are noncancerous.",
    "No Tumor": "No tumor detected in the MRI scan.",
    "Pituitary": "A tumor that forms in the pituitary gland at the base of the brain. Most "
                 "pituitary tumors are noncancerous.",
}


def api_info() -> dict:
    return {
        "name": "Brain Tumor Classification API",
        "version": __version__,
        "endpoints": {
            "/api/classify": {"method": "POST",
                              "description": "Upload and classify a brain MRI image"},
            "/api/classify-series": {"method": "POST",
                                     "description": "Classify a whole series: DICOM files, "
                                                    "a zip of them, or a NIfTI volume"},
            "/api/health": {"method": "GET", "description": "Health check endpoint"},
            "/api/classes": {"method": "GET",
                             "description": "Get available classification classes"},
        },
    }


@bp.get("/")
def index():
    # a browser gets the web page (frontend.py); curl and API clients keep the JSON
    response = frontend.index_page() if frontend.wants_html() else jsonify(api_info())
    response.vary.add("Accept")
    return response


@bp.get("/api/health")
def health():
    svc = service()
    model = svc.classifier.model
    meta = model.metadata
    spark = spark_status(current_app)
    spark_service = spark.service()
    return jsonify({
        "status": "degraded" if spark_service["status"] == "down" else "healthy",
        "timestamp": utc_timestamp(),
        "services": {
            "model": {"status": "up", "loaded": True},
            "spark": spark_service,
        },
        "details": {
            "model_path": str(model.path),
            "num_classes": len(svc.settings.CLASS_NAMES),
            "image_size": list(model.input_spec.size),
            "spark_version": spark.version,
            # pyspark is the [spark] extra, which the server does not need
            "spark_installed": spark.installed,
            "model_version": meta.version or None,
            "temperature": meta.temperature,
            "gradcam_layer": model.graph.layer_name,
            # what runs the model: "onnxruntime" or "tensorflow" (MODEL_RUNTIME)
            "model_runtime": runtime_of(model),
            "ood_policy": svc.classifier.ood.policy,
            "ood_threshold": svc.classifier.ood.threshold,
        },
        # what /api/classify takes, so that a client checks a file before sending it
        # without copying the service's limits (the web page reads them from here)
        "upload": {
            "max_bytes": svc.settings.MAX_CONTENT_LENGTH,
            "extensions": list(ALLOWED_EXTENSIONS),
            "dicom_extensions": list(DICOM_EXTENSIONS),
        },
    })


@bp.get("/api/classes")
def classes():
    names = service().settings.CLASS_NAMES
    return jsonify({
        "success": True,
        "classes": [{"id": i, "name": names[i], "description": CLASS_DESCRIPTIONS.get(names[i], "")}
                    for i in sorted(names)],
        "total_classes": len(names),
    })


@bp.post("/api/classify")
def classify():
    svc = service()
    upload = request.files.get("file")
    if upload is None:
        raise NoFileError("No file provided in request")
    if not upload.filename:
        raise EmptyFilenameError("Empty filename")
    limit = svc.settings.MAX_CONTENT_LENGTH
    data = upload.stream.read(limit + 1)
    if len(data) > limit:
        raise FileTooLargeError(f"File exceeds {limit // (1024 * 1024)}MB limit")
    note_uploads(data)  # for the audit trail's hash
    frame = parse_frame(request.form.get("frame"))  # a multi-frame DICOM's frame, 0-based
    result = svc.classifier.classify_upload(data, upload.filename, frame=frame)
    body = result.to_json()
    note_answer(body)  # the request's log line, metrics and audit line
    log.info("classified %s %.2f%% in %.1f ms", body["prediction"]["class"],
             body["prediction"]["confidence"], body["processing_time_ms"])
    return jsonify(body)
