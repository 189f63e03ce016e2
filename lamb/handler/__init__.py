"""What ships inside every artifact: ``lambda_function.py`` (the entry Lambda calls) and the ``lambkit``
package it imports. lamb itself imports only ``lambkit`` (its preprocessing and limits), never the entry."""
