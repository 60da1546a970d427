"""The Canvas side: the requester (:mod:`.client`), the SIS import and its wait loop (:mod:`.sis_import`),
the results saved into a build directory (:mod:`.results`) and the upload pipeline (:mod:`.upload`)."""
