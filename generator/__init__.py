"""The melody engine: ESAC corpus → 16th-note token series → LSTM → new melodies."""
