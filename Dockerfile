FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1
WORKDIR /app
COPY pyproject.toml ./
COPY portal portal
COPY clients clients
COPY relationships relationships
COPY demographics demographics
COPY communications communications
COPY superannuation superannuation
COPY ato_gateway ato_gateway
COPY templates templates
COPY static static
COPY manage.py ./
RUN pip install --no-cache-dir . \
 && DJANGO_DEBUG=1 STATIC_ROOT=/app/staticfiles python manage.py collectstatic --noinput
ENV STATIC_ROOT=/app/staticfiles
RUN useradd --system portal
USER portal
EXPOSE 8000
CMD ["gunicorn", "portal.wsgi", "--bind", "0.0.0.0:8000", "--workers", "2", "--access-logfile", "-"]
