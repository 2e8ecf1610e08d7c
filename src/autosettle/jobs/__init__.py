"""Automation: the jobs that run by themselves inside ``autosettle serve``.

What lives here: a small runner of periodic tasks (each with its own interval, errors
logged and counted, never fatal), and the tasks themselves: retrying reversals until the
channel acknowledges them, recovering transactions stuck by a crash, and (issue 4) the
cut-off, settlement and payout jobs with database leases so that several instances never
run the same job twice.

What may not: business rules. A job calls a service, which does the work in a unit of work.
"""
