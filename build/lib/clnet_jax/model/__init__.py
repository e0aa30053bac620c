"""SiamRPN++ as pure functions on param pytrees: backbone, neck and heads up to the hidden
maps h0 (``siamrpn``), anchors and box coding, depthwise xcorr, Winograd convolutions, anchor
targets and the RPN losses."""
