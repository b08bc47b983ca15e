"""One lxml parser configuration for everything S3 sends us.

Entities are never resolved, no DTD or network fetch happens, and huge documents are
refused, so an entity-expansion bomb or an external entity is an error, not a read.
"""

from lxml import etree

S3_NS = "http://s3.amazonaws.com/doc/2006-03-01/"


def make_parser() -> etree.XMLParser:
    """A fresh parser (lxml parsers are not shared between threads)."""
    return etree.XMLParser(
        resolve_entities=False,
        no_network=True,
        load_dtd=False,
        dtd_validation=False,
        huge_tree=False,
        remove_comments=True,
        remove_pis=True,
    )


def parse(body: bytes, parser: etree.XMLParser | None = None) -> etree._Element:
    """Parse ``body`` safely; raises ``ValueError`` naming the problem.

    A document with a DOCTYPE that declares entities is refused outright: S3 never
    sends one, and refusing it means no expansion can happen at all.
    """
    parser = parser if parser is not None else make_parser()
    try:
        root = etree.fromstring(body, parser)
    except etree.XMLSyntaxError as exc:
        raise ValueError(f"malformed XML: {exc}") from None
    doc = root.getroottree().docinfo
    if doc.internalDTD is not None or doc.externalDTD is not None or doc.system_url:
        raise ValueError("XML with a DOCTYPE is refused (entity declarations are not allowed)")
    return root


def local_name(element: etree._Element) -> str:
    """Tag without its namespace: ``{ns}ListBucketResult`` -> ``ListBucketResult``."""
    return etree.QName(element).localname
