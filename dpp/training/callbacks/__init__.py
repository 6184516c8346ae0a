"""Lightning callbacks of gradient training, one module each (conf/callbacks/)."""
