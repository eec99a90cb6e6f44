import { fileExtension } from '../validation';

interface Props {
  previewUrl: string;
  fileName: string;
  /** Fraction of the upload sent; 1 once the server is working on it. */
  uploaded: number;
}

/** The chosen image while it travels and while the model looks at it. */
export function Progress({ previewUrl, fileName, uploaded }: Props) {
  const uploading = uploaded < 1;
  const label = uploading ? `Uploading ${Math.round(uploaded * 100)}%` : 'Analysing with the model…';
  // Browsers cannot draw DICOM: the service decodes it, and its picture comes with the answer
  const dicom = ['dcm', 'dicom'].includes(fileExtension(fileName));
  return (
    <div className="progress">
      {dicom ? (
        <p className="progress__placeholder">DICOM file: the picture appears once the service has decoded it.</p>
      ) : (
        <img className="progress__preview" src={previewUrl} alt={`Preview of ${fileName}`} />
      )}
      <div className="progress__panel">
        <p className="progress__label">{label}</p>
        <div
          className={`progress__track${uploading ? '' : ' progress__track--busy'}`}
          role="progressbar"
          aria-label={`Classifying ${fileName}`}
          aria-valuemin={0}
          aria-valuemax={100}
          aria-valuenow={uploading ? Math.round(uploaded * 100) : undefined}
          aria-valuetext={label}
        >
          <span className="progress__fill" style={uploading ? { width: `${uploaded * 100}%` } : undefined} />
        </div>
      </div>
    </div>
  );
}
