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
  return (
    <div className="progress">
      <img className="progress__preview" src={previewUrl} alt={`Preview of ${fileName}`} />
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
