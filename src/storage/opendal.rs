//! The OpenDAL back end: the local folder (`fs://`) and memory (`memory://`).
