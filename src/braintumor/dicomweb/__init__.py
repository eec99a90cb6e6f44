"""DICOMweb: classify MR series in a PACS (QIDO-RS, WADO-RS) and store the answers back
as a DICOM Structured Report and a Secondary Capture (STOW-RS)."""
