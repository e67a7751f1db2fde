//! Data-channel address syntax: PORT, EPRT (RFC 2428), LPRT (RFC 1639) and the
//! replies of PASV, EPSV, LPSV and SPSV.
