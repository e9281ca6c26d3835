"""E-mail intake: parsing real-world mail, threading it, and the SMTP / IMAP / HTTP doors."""
