"""routines"""
