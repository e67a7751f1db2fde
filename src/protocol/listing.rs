//! Listing lines: `ls -l` style for LIST, names for NLST, facts for MLSD/MLST
//! (RFC 3659), and the YYYYMMDDHHMMSS time format of MDTM/MFMT.
